/**
 * Flags + environment -> frozen, typed configuration: one zod schema per command over its flags
 * (`flags`), positionals (`args`) and environment (`env`); the types are the schemas' outputs
 * (z.infer), cross-field rules are checks on the whole input. A flag wins over its variable (the
 * variable is not even read then). No I/O here: files named by flags are read by the commands.
 * Every bad field is named, all at once; no value that may be a secret is ever echoed.
 */
import { z } from 'zod';
import { UsageError } from '../support/errors.js';
import { DEFAULT_QUEUE, MAX_PART, MAX_QUEUE, MIN_PART, S3_MAX_PARTS } from '../model/plan.js';
import { connFromEnv, connFromUrl, namesDatabase } from '../pg/conn.js';
import { TIERS } from '../model/keys.js';
import { DEFAULT_RETENTION, MAX_RETENTION_DAYS, MAX_RULE_PREFIX, type RetentionDays } from '../model/lifecycle.js';
import { DEFAULT_TARGET, parseTarget, parseEnvTargets, targetId, type Target } from '../storage/target.js';
import type { Parsed } from '../cli/args.js';
import { DEFAULT_SCRYPT_LOG_N, MAX_SCRYPT_LOG_N, MIN_SCRYPT_LOG_N, recipientKind, recipientProblem } from '../crypto/age.js';
import { DEFAULT_LEVEL } from '../pipeline/compress.js';
import { parseQualifiedPattern, parseSchemaPattern, type Selection } from '../model/selection.js';
import { DEFAULT_STALL_MS } from '../pipeline/dump.js';
import { MINUTE, parseDuration, parseSize, sizeLabel } from '../support/units.js';

export { parseTarget };

export type Env = NodeJS.ProcessEnv;

// ---------------------------------------------------------------------------------------------
// Field schemas

export const sizeSchema = z.string().transform((s, ctx) => {
  const n = parseSize(s);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a size: "${s}" (e.g. 16MiB, 64M, 1GiB)` });
    return z.NEVER;
  }
  return n;
});

export const durationSchema = z.string().transform((s, ctx) => {
  const ms = parseDuration(s);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${s}" (e.g. 90s, 10m, 2h, 1h30m)` });
    return z.NEVER;
  }
  if (ms <= 0) {
    ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
    return z.NEVER;
  }
  return ms;
});

const intIn = (lo: number, hi: number, message = `must be a whole number from ${lo} to ${hi}`) =>
  z.string().transform((s, ctx) => {
    const n = Number(s);
    if (!/^\d+$/.test(s.trim()) || n < lo || n > hi) {
      ctx.addIssue({ code: 'custom', message: `${message}, not "${s}"` });
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

/**
 * A problem that names its own field (our parsers' UsageErrors: "--to: ... names no bucket"),
 * reported as worded, not prefixed with the field again.
 */
const WHOLE = { whole: true } as const;

/** The problems of a parser that throws UsageError (targets, connection strings) as issues. */
function parsed<T>(ctx: z.RefinementCtx, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    for (const m of e.problems) ctx.addIssue({ code: 'custom', message: m, params: WHOLE });
    return z.NEVER;
  }
}

/** A cross-field problem, worded whole. */
function problem(ctx: z.RefinementCtx, message: string): void {
  ctx.addIssue({ code: 'custom', message, params: WHOLE });
}

const str = z.string().optional();
/** --prometheus FILE (a path; the folder must exist when the file is written). */
const promFile = z
  .string()
  .optional()
  .superRefine((f, ctx) => {
    if (f === undefined) return;
    if (f.trim() === '') ctx.addIssue({ code: 'custom', message: 'empty path' });
    else if (!f.endsWith('.prom')) ctx.addIssue({ code: 'custom', message: `"${f}" does not end in .prom (node_exporter's textfile collector reads only *.prom files)` });
  });
const flag = z.boolean().optional().transform((b) => b === true);
const list = z.array(z.string()).optional().transform((l) => l ?? []);
/** Runs even when fields failed, so that one run names every problem. */
const ALWAYS = { when: () => true };

// ---------------------------------------------------------------------------------------------
// The input of a command and the errors of its schema

interface Input {
  flags: Parsed['values'];
  args: string[];
  env: Env;
}

/** A command's input; a variable backing a flag that was given is left out (the flag wins, the variable is not read). */
function inputOf(p: Parsed, env: Env, backing: Record<string, string> = {}): Input {
  const e: Env = { ...env };
  for (const [variable, f] of Object.entries(backing)) if (p.values[f] !== undefined) delete e[variable];
  return { flags: p.values, args: p.positionals, env: e };
}

/** The field an issue is about, as the user wrote it: --flag or VARIABLE. */
function problemOf(i: z.core.$ZodIssue): string {
  if (i.code === 'custom' && (i.params as { whole?: boolean } | undefined)?.whole) return i.message;
  const [where, name] = i.path;
  if (where === 'flags' && name !== undefined) return `--${String(name)}: ${i.message}`;
  if (where === 'env' && name !== undefined) return `${String(name)}: ${i.message}`;
  return i.message;
}

function parseInput<T>(schema: z.ZodType<T>, input: unknown): Readonly<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new UsageError(r.error.issues.map(problemOf));
  return Object.freeze(r.data);
}

/** Values of a variable that lists things (space- or comma-separated). */
const listVar = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);

// ---------------------------------------------------------------------------------------------
// Shared parts

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;
const MIN_PROGRESS_INTERVAL_MS = 100;
const progressInterval = durationSchema.refine((ms) => ms >= MIN_PROGRESS_INTERVAL_MS, `at least ${MIN_PROGRESS_INTERVAL_MS}ms`).optional();

const commonSchema = z
  .object({
    flags: z.object({
      'log-format': z.enum(['json', 'pretty']).optional(),
      'log-level': z.enum(LOG_LEVELS).optional(),
      quiet: flag,
      'progress-interval': progressInterval,
    }),
    env: z.object({ PGBACKUP_LOG_LEVEL: z.enum(LOG_LEVELS).optional(), PGBACKUP_PROGRESS_INTERVAL: progressInterval }),
  })
  .transform(({ flags: f, env: e }) => ({
    logFormat: f['log-format'],
    logLevel: f['log-level'] ?? e.PGBACKUP_LOG_LEVEL ?? (f.quiet ? 'warn' : 'info'),
    quiet: f.quiet,
    /** JSON logs: a progress event this often. */
    progressIntervalMs: f['progress-interval'] ?? e.PGBACKUP_PROGRESS_INTERVAL ?? DEFAULT_PROGRESS_INTERVAL_MS,
  }));
export type CommonConfig = z.infer<typeof commonSchema>;

export function commonConfig(p: Parsed, env: Env): Readonly<CommonConfig> {
  return parseInput(commonSchema, inputOf(p, env, { PGBACKUP_LOG_LEVEL: 'log-level', PGBACKUP_PROGRESS_INTERVAL: 'progress-interval' }));
}

const retentionSchema = z
  .object(Object.fromEntries(TIERS.map((t) => [`PGBACKUP_KEEP_${t.toUpperCase()}_DAYS`, intIn(1, MAX_RETENTION_DAYS).optional()])))
  .transform((e) => Object.fromEntries(TIERS.map((t) => [t, e[`PGBACKUP_KEEP_${t.toUpperCase()}_DAYS`] ?? DEFAULT_RETENTION[t]])) as unknown as RetentionDays);

const retentionInput = z.object({ env: retentionSchema }).transform((o) => o.env);

export function retentionConfig(env: Env): Readonly<RetentionDays> {
  return parseInput(retentionInput, { env });
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

const partLimitsSchema = z
  .object({
    env: z.object({
      PGBACKUP_S3_MAX_PARTS: intIn(1, S3_MAX_PARTS).optional(),
      PGBACKUP_S3_MAX_PART_SIZE: sizeSchema.optional(),
    }),
  })
  .transform(({ env: e }) => ({ maxParts: e.PGBACKUP_S3_MAX_PARTS ?? S3_MAX_PARTS, maxPart: e.PGBACKUP_S3_MAX_PART_SIZE ?? MAX_PART }));

/**
 * The multipart limits to plan for (S3's unless set): PGBACKUP_S3_MAX_PARTS and
 * PGBACKUP_S3_MAX_PART_SIZE, for S3-compatible services with other limits.
 */
export function partLimits(env: Env): { maxParts: number; maxPart: number } {
  // An empty variable is unset.
  return parseInput(partLimitsSchema, { env: { PGBACKUP_S3_MAX_PARTS: env.PGBACKUP_S3_MAX_PARTS || undefined, PGBACKUP_S3_MAX_PART_SIZE: env.PGBACKUP_S3_MAX_PART_SIZE || undefined } });
}

/**
 * The one target a reading command uses: --from, else PGBACKUP_TARGET (a list, made for backup:
 * its first target), else the default folder. Fields of the command's flags and env.
 */
const fromFields = (env: Env) => ({
  flag: z
    .string()
    .optional()
    .transform((t, ctx) => (t === undefined ? undefined : parsed(ctx, () => parseTarget(t, env, '--from')))),
  env: z
    .string()
    .optional()
    .transform((t, ctx) => (t === undefined ? undefined : parsed(ctx, () => parseEnvTargets(t, env)[0]!))),
});
const FROM_BACKING = { PGBACKUP_TARGET: 'from' };
const defaultTarget = (env: Env): Target => parseTarget(DEFAULT_TARGET, env, 'PGBACKUP_TARGET');

/** Identity files and passphrase file of the commands that decrypt. */
const secretFlags = { identity: list, 'passphrase-file': str };
const secretEnv = { PGBACKUP_IDENTITY_FILE: str, PGBACKUP_PASSPHRASE_FILE: str };
const SECRET_BACKING = { PGBACKUP_PASSPHRASE_FILE: 'passphrase-file' };
function secretsOf(f: { identity: string[]; 'passphrase-file'?: string | undefined }, e: { PGBACKUP_IDENTITY_FILE?: string | undefined; PGBACKUP_PASSPHRASE_FILE?: string | undefined }) {
  return {
    identityFiles: f.identity.length ? f.identity : e.PGBACKUP_IDENTITY_FILE ? e.PGBACKUP_IDENTITY_FILE.split(',').filter(Boolean) : [],
    passphraseFile: f['passphrase-file'] ?? (e.PGBACKUP_PASSPHRASE_FILE || undefined),
  };
}
export type SecretsConfig = ReturnType<typeof secretsOf>;


/** A connection string given by `field` (a flag or DATABASE_URL), parsed where it is read. */
const connSchema = (field: string, env: Env) => z.string().transform((s, ctx) => parsed(ctx, () => connFromUrl(s, field, env)));

/** Recipients (a flag repeated, or a variable's list), each checked, and not mixed. */
const recipientsSchema = (where: (i: number) => string) =>
  z.array(z.string()).transform((rs, ctx) => {
    for (const m of recipientProblems(rs, where)) problem(ctx, m);
    return rs;
  });

/** A parsed field's value in a cross-field check, or undefined when that field failed (it is reported already). */
const ok = <T>(v: T): T | undefined => (v !== null && typeof v === 'object' && 'status' in v && (v as { status: unknown }).status === 'aborted' ? undefined : v);

// ---------------------------------------------------------------------------------------------
// backup

const DUMP_FILTERS = ['schema', 'exclude-schema', 'table', 'exclude-table', 'exclude-table-data'] as const;
const DUMP_SWITCHES = ['column-inserts', 'no-owner', 'no-privileges'] as const;
const pattern = z.array(z.string().min(1, 'empty pattern')).optional().transform((l) => l ?? []);
const partSizeSchema = sizeSchema.refine((n) => n >= MIN_PART && n <= MAX_PART, `S3 parts must be from ${sizeLabel(MIN_PART)} to ${sizeLabel(MAX_PART)}`);

function backupSchema(env: Env) {
  return z
    .object({
      flags: z.object({
        database: connSchema('--database', env).optional(),
        to: z
          .array(z.string())
          .optional()
          .transform((ts, ctx) => (ts ?? []).map((t, i, all) => parsed(ctx, () => parseTarget(t, env, all.length > 1 ? `--to #${i + 1}` : '--to')))),
        recipient: recipientsSchema((i) => `--recipient #${i + 1}`).optional(),
        'recipients-file': str,
        'passphrase-file': str,
        'no-encryption': flag,
        'compress-level': intIn(0, 9).optional(),
        tier: z.enum(['auto', ...TIERS]).optional(),
        schema: pattern,
        'exclude-schema': pattern,
        table: pattern,
        'exclude-table': pattern,
        'exclude-table-data': pattern,
        'column-inserts': flag,
        'no-owner': flag,
        'no-privileges': flag,
        'all-databases': flag,
        globals: flag,
        'part-size': partSizeSchema.optional(),
        'queue-size': intIn(1, MAX_QUEUE).optional(),
        timeout: durationSchema.optional(),
        'stall-timeout': durationSchema.optional(),
        'healthcheck-url': httpUrl.optional(),
        'webhook-url': httpUrl.optional(),
        prometheus: promFile,
      }),
      env: z.object({
        DATABASE_URL: connSchema('DATABASE_URL', env).optional(),
        PGBACKUP_TARGET: z
          .string()
          .optional()
          .transform((t, ctx) => (t === undefined ? undefined : parsed(ctx, () => parseEnvTargets(t, env)))),
        PGBACKUP_RECIPIENTS: z
          .string()
          .optional()
          .transform((v) => listVar(v))
          .pipe(recipientsSchema((i) => `PGBACKUP_RECIPIENTS #${i + 1}`)),
        PGBACKUP_RECIPIENTS_FILE: str,
        PGBACKUP_PASSPHRASE_FILE: str,
        PGBACKUP_S3_PART_SIZE: partSizeSchema.optional(),
        PGBACKUP_S3_QUEUE_SIZE: intIn(1, MAX_QUEUE).optional(),
        PGBACKUP_SCRYPT_WORK_FACTOR: intIn(MIN_SCRYPT_LOG_N, MAX_SCRYPT_LOG_N).optional(),
      }),
    })
    .check(
      z.superRefine(({ flags: f, env: e }, ctx) => {
        const toGiven = f.to !== undefined && (ok(f.to)?.length ?? 1) > 0;
        const targets = toGiven ? ok(f.to) : e.PGBACKUP_TARGET !== undefined ? ok(e.PGBACKUP_TARGET) : [];
        const seen = new Set<string>();
        for (const t of targets ?? []) {
          if (ok(t) === undefined) continue;
          const id = targetId(t);
          if (seen.has(id)) problem(ctx, `${toGiven ? '--to' : 'PGBACKUP_TARGET'}: ${id.replace(/^folder:/, '')} is named twice`);
          seen.add(id);
        }
        const recipients = f.recipient !== undefined ? f.recipient : e.PGBACKUP_RECIPIENTS;
        const hasRecipients = Array.isArray(recipients) ? recipients.length > 0 : true;
        const recipientsFile = f['recipients-file'] ?? (f.recipient !== undefined ? undefined : e.PGBACKUP_RECIPIENTS_FILE || undefined);
        const passphraseFile = f['passphrase-file'] ?? e.PGBACKUP_PASSPHRASE_FILE;
        const noEncryption = f['no-encryption'];
        if (!noEncryption && !hasRecipients && !recipientsFile && !passphraseFile) {
          problem(ctx, 'encryption: no age recipient or passphrase given: use --recipient, --recipients-file or --passphrase-file (or PGBACKUP_RECIPIENTS), or --no-encryption to store the dump unencrypted');
        }
        if (noEncryption && (hasRecipients || f['recipients-file'] || f['passphrase-file'])) problem(ctx, '--no-encryption: conflicts with --recipient / --recipients-file / --passphrase-file');
        if (passphraseFile && (hasRecipients || recipientsFile) && !noEncryption) {
          problem(ctx, '--passphrase-file: age cannot encrypt to a passphrase and to recipients at once; give one or the other');
        }
        if (f['all-databases'] && (f.table.length || f.schema.length)) problem(ctx, '--all-databases: cannot be combined with --table or --schema');
      }, ALWAYS),
    )
    .transform(({ flags: f, env: e }, ctx) => {
      const targets = f.to.length ? f.to : (e.PGBACKUP_TARGET ?? [parseTarget(DEFAULT_TARGET, env, 'PGBACKUP_TARGET')]);
      const recipients = f.recipient ?? e.PGBACKUP_RECIPIENTS;
      return {
        source: f.database ?? e.DATABASE_URL ?? parsed(ctx, () => connFromEnv(env)),
        /** The first of `targets`. */
        target: targets[0]!,
        /** Every target the backup goes to (--to repeated, or a list in PGBACKUP_TARGET): the same bytes, the same key. */
        targets,
        /** Neither --to nor PGBACKUP_TARGET: the default folder (the summary names its absolute path). */
        targetIsDefault: f.to.length === 0 && env.PGBACKUP_TARGET === undefined,
        recipients,
        recipientsFile: f['recipients-file'] ?? (f.recipient ? undefined : e.PGBACKUP_RECIPIENTS_FILE || undefined),
        passphraseFile: f['passphrase-file'] ?? e.PGBACKUP_PASSPHRASE_FILE ?? undefined,
        noEncryption: f['no-encryption'],
        compressLevel: f['compress-level'] ?? DEFAULT_LEVEL,
        tier: f.tier ?? 'auto',
        /** pg_dump's filter and switch options, in the order given per kind. */
        dumpOptions: [...DUMP_FILTERS.flatMap((k) => f[k].map((pat) => `--${k}=${pat}`)), ...DUMP_SWITCHES.filter((k) => f[k]).map((k) => `--${k}`)],
        allDatabases: f['all-databases'],
        globals: f.globals,
        partSize: f['part-size'] ?? e.PGBACKUP_S3_PART_SIZE,
        queueSize: f['queue-size'] ?? e.PGBACKUP_S3_QUEUE_SIZE ?? DEFAULT_QUEUE,
        timeoutMs: f.timeout,
        stallMs: f['stall-timeout'] ?? DEFAULT_STALL_MS,
        healthcheckUrl: f['healthcheck-url'],
        webhookUrl: f['webhook-url'],
        /** --prometheus FILE: the node_exporter textfile to update when the run ends. */
        prometheus: f.prometheus,
        scryptLogN: e.PGBACKUP_SCRYPT_WORK_FACTOR ?? DEFAULT_SCRYPT_LOG_N,
      };
    });
}

export type BackupConfig = z.infer<ReturnType<typeof backupSchema>>;

export function backupConfig(p: Parsed, env: Env): Readonly<BackupConfig> {
  return parseInput(
    backupSchema(env),
    inputOf(p, env, {
      DATABASE_URL: 'database',
      PGBACKUP_TARGET: 'to',
      PGBACKUP_RECIPIENTS: 'recipient',
      PGBACKUP_PASSPHRASE_FILE: 'passphrase-file',
      PGBACKUP_S3_PART_SIZE: 'part-size',
      PGBACKUP_S3_QUEUE_SIZE: 'queue-size',
    }),
  );
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

// ---------------------------------------------------------------------------------------------
// list

function listSchema(env: Env) {
  return z
    .object({ flags: z.object({ from: fromFields(env).flag, database: str, json: flag }), env: z.object({ PGBACKUP_TARGET: fromFields(env).env }) })
    .transform(({ flags: f, env: e }) => ({ target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env), database: f.database, json: f.json }));
}
export type ListConfig = z.infer<ReturnType<typeof listSchema>>;

export function listConfig(p: Parsed, env: Env): Readonly<ListConfig> {
  return parseInput(listSchema(env), inputOf(p, env, FROM_BACKING));
}

// ---------------------------------------------------------------------------------------------
// restore

/** Patterns a parser checks one by one (it returns a problem, worded whole, or the parsed pattern). */
function patterns<T>(ctx: z.RefinementCtx, raw: string[] | undefined, parse: (s: string) => T | string): T[] {
  const out: T[] = [];
  for (const s of raw ?? []) {
    const p = parse(s);
    if (typeof p === 'string') problem(ctx, p);
    else out.push(p);
  }
  return out;
}
const qualifiedPatterns = (field: string) =>
  z
    .array(z.string())
    .optional()
    .transform((l, ctx) => patterns(ctx, l, (s) => parseQualifiedPattern(field, s)));

/** Sessions of a restore unless --jobs says otherwise (see docs: why this default). */
export const DEFAULT_RESTORE_JOBS = 1;
export const MAX_RESTORE_JOBS = 64;
/** --lock-timeout's default: how long a restore statement waits for a lock before it gives up. */
export const DEFAULT_LOCK_TIMEOUT_MS = MINUTE;

function restoreSchema(env: Env) {
  return z
    .object({
      args: z.array(z.string()),
      flags: z.object({
        latest: flag,
        at: atSchema.optional(),
        'any-kind': flag,
        from: fromFields(env).flag,
        database: str,
        to: z
          .string()
          .optional()
          .transform((to, ctx) => {
            if (to === undefined) return undefined;
            const ci = parsed(ctx, () => connFromUrl(to, '--to', env));
            if (!namesDatabase(to, '--to')) problem(ctx, '--to: names no database (postgres://user@host:port/DBNAME)');
            return ci;
          }),
        ...secretFlags,
        create: flag,
        'db-encoding': str,
        'db-locale': str,
        'create-with-defaults': flag,
        'apply-database-properties': flag,
        clean: flag,
        'no-safety-backup': flag,
        yes: flag,
        'no-owner': flag,
        json: flag,
        'lock-timeout': durationSchema.optional(),
        jobs: z
          .string()
          .optional()
          .refine((j) => j === undefined || (/^\d+$/.test(j) && Number(j) >= 1 && Number(j) <= MAX_RESTORE_JOBS), { message: `a whole number from 1 to ${MAX_RESTORE_JOBS}` }),
        'terminate-connections': flag,
        list: flag,
        table: qualifiedPatterns('--table'),
        schema: z
          .array(z.string())
          .optional()
          .transform((l, ctx) => patterns(ctx, l, parseSchemaPattern)),
        'exclude-table': qualifiedPatterns('--exclude-table'),
      }),
      env: z.object({ ...secretEnv, PGBACKUP_RECIPIENTS: str, PGBACKUP_TARGET: fromFields(env).env }),
    })
    .check(
      z.superRefine(({ args, flags: f }, ctx) => {
        const key = args[0];
        const chosen = [key !== undefined, f.latest, f.at !== undefined].filter(Boolean).length;
        if (chosen === 0) problem(ctx, 'which backup: give a KEY (or file), --latest or --at TIME');
        if (chosen > 1) problem(ctx, 'which backup: give only one of KEY, --latest, --at');
        // The target is always explicit: never DATABASE_URL or PG* alone (on a backup host that may be production).
        if (f.list) {
          for (const k of ['to', 'clean', 'create', 'jobs', 'yes'] as const) {
            if (f[k] !== undefined && f[k] !== false) problem(ctx, `--list: prints the backup's entries and restores nothing; --${k} does not go with it`);
          }
          if (!key && f.database === undefined) problem(ctx, '--list with --latest or --at: name the database with --database');
        } else if (f.to === undefined) {
          problem(ctx, '--to: required: the database to restore into (postgres://user@host:port/DBNAME); restore never takes its target from DATABASE_URL or PG* variables');
        }
        for (const k of ['db-encoding', 'db-locale', 'create-with-defaults'] as const) {
          if (f[k] !== undefined && f[k] !== false && !f.create) problem(ctx, `--${k}: only with --create (it chooses how the database is created)`);
        }
        if (f['create-with-defaults'] && f['db-locale'] !== undefined) problem(ctx, '--create-with-defaults and --db-locale: give one of them');
        const selective = f.table.length > 0 || f.schema.length > 0 || f['exclude-table'].length > 0;
        if (selective && f.list) problem(ctx, '--list prints every entry of the backup; --table, --schema and --exclude-table do not go with it');
        if (selective && f.jobs !== undefined && f.jobs !== '1') problem(ctx, '--table, --schema, --exclude-table: a selective restore runs in one session, one transaction; --jobs does not go with it');
        if (f['exclude-table'].length && !f.table.length && !f.schema.length) problem(ctx, '--exclude-table narrows what --table or --schema select: give one of them');
      }, ALWAYS),
    )
    .transform(({ args, flags: f, env: e }) => {
      return {
        ...secretsOf(f, e),
        key: args[0],
        latest: f.latest,
        at: f.at,
        /** --latest / --at may pick safety and partial backups too. */
        anyKind: f['any-kind'],
        target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env),
        database: f.database,
        // Only --list goes without --to (checked above); it never reads `dest`.
        dest: f.to!,
        create: f.create,
        clean: f.clean,
        yes: f.yes,
        safetyBackup: !f['no-safety-backup'],
        noOwner: f['no-owner'],
        /** lock_timeout for the restore's statements (and pg_dump --lock-wait-timeout for its safety backup). */
        lockTimeoutMs: f['lock-timeout'] ?? DEFAULT_LOCK_TIMEOUT_MS,
        /** --create: how to make the database (else like the source: encoding, locale). */
        createWith: { encoding: f['db-encoding'], locale: f['db-locale'], defaults: f['create-with-defaults'] },
        /** --clean into an existing database: apply the source's properties too. */
        applyDatabaseProperties: f['apply-database-properties'],
        /** For the safety backup taken before --clean. */
        recipients: listVar(e.PGBACKUP_RECIPIENTS),
        json: f.json,
        /** psql sessions: 1 = one transaction; more = parallel, atomic per database. */
        jobs: f.jobs === undefined ? DEFAULT_RESTORE_JOBS : Number(f.jobs),
        /** End other sessions on the target before replacing it. */
        terminateConnections: f['terminate-connections'],
        /** Print the backup's entries; restore nothing. */
        list: f.list,
        /** The selective-restore options (model/selection.ts), or undefined when none is given. */
        selection: f.table.length || f.schema.length || f['exclude-table'].length ? ({ tables: f.table, schemas: f.schema, excludeTables: f['exclude-table'] } satisfies Selection) : undefined,
      };
    });
}
export type RestoreConfig = z.infer<ReturnType<typeof restoreSchema>>;

export function restoreConfig(p: Parsed, env: Env): Readonly<RestoreConfig> {
  return parseInput(restoreSchema(env), inputOf(p, env, { ...SECRET_BACKING, ...FROM_BACKING }));
}

// ---------------------------------------------------------------------------------------------
// verify

function verifySchema(env: Env) {
  return z
    .object({
      args: z.array(z.string()),
      flags: z.object({ latest: flag, all: flag, from: fromFields(env).flag, database: str, ...secretFlags, 'restore-into': connSchema('--restore-into', env).optional(), json: flag, 'any-kind': flag, prometheus: promFile }),
      env: z.object({ ...secretEnv, PGBACKUP_TARGET: fromFields(env).env }),
    })
    .check(
      z.superRefine(({ args, flags: f }, ctx) => {
        const chosen = [args[0] !== undefined, f.latest, f.all].filter(Boolean).length;
        if (chosen === 0) problem(ctx, 'which backup: give a KEY, --latest or --all');
        if (chosen > 1) problem(ctx, 'which backup: give only one of KEY, --latest, --all');
        if (f.latest && !f.database) problem(ctx, '--latest: needs --database NAME');
      }, ALWAYS),
    )
    .transform(({ args, flags: f, env: e }) => ({
      ...secretsOf(f, e),
      key: args[0],
      latest: f.latest,
      all: f.all,
      anyKind: f['any-kind'],
      target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env),
      database: f.database,
      restoreInto: f['restore-into'],
      json: f.json,
      prometheus: f.prometheus,
    }));
}
export type VerifyConfig = z.infer<ReturnType<typeof verifySchema>>;

export function verifyConfig(p: Parsed, env: Env): Readonly<VerifyConfig> {
  return parseInput(verifySchema(env), inputOf(p, env, { ...SECRET_BACKING, ...FROM_BACKING }));
}

// ---------------------------------------------------------------------------------------------
// fetch

function fetchSchema(env: Env) {
  return z
    .object({
      args: z.array(z.string()),
      flags: z.object({ from: fromFields(env).flag, ...secretFlags, output: str, force: flag }),
      env: z.object({ ...secretEnv, PGBACKUP_TARGET: fromFields(env).env }),
    })
    .check(z.superRefine(({ args }, ctx) => (args[0] ? undefined : problem(ctx, 'KEY: which backup to fetch')), ALWAYS))
    .transform(({ args, flags: f, env: e }) => ({
      ...secretsOf(f, e),
      key: args[0]!,
      target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env),
      output: f.output ?? '-',
      /** Replace an existing -o FILE. */
      force: f.force,
    }));
}
export type FetchConfig = z.infer<ReturnType<typeof fetchSchema>>;

export function fetchConfig(p: Parsed, env: Env): Readonly<FetchConfig> {
  return parseInput(fetchSchema(env), inputOf(p, env, { ...SECRET_BACKING, ...FROM_BACKING }));
}

// ---------------------------------------------------------------------------------------------
// keygen

const keygenSchema = z.object({ flags: z.object({ pq: flag, output: str }) }).transform(({ flags: f }) => ({ pq: f.pq, output: f.output }));
export type KeygenConfig = z.infer<typeof keygenSchema>;

export function keygenConfig(p: Parsed): Readonly<KeygenConfig> {
  return parseInput(keygenSchema, inputOf(p, {}));
}

// ---------------------------------------------------------------------------------------------
// bucket

function bucketSchema(env: Env) {
  return z
    .object({
      args: z.array(z.string()),
      flags: z.object({ to: str, from: str, apply: flag, json: flag }),
      env: z.object({ PGBACKUP_TARGET: str }).and(retentionSchema),
    })
    .check(
      z.superRefine(({ args, flags: f, env: e }, ctx) => {
        const action = args[0];
        if (action !== 'check' && action !== 'lifecycle') problem(ctx, `bucket: expected "check" or "lifecycle"${action ? `, not "${action}"` : ''}`);
        if (!(f.to ?? f.from ?? e.PGBACKUP_TARGET)) problem(ctx, '--to: the bucket to use (s3://bucket/prefix/, or PGBACKUP_TARGET)');
        if (f.apply && action !== 'lifecycle') problem(ctx, '--apply: only with "bucket lifecycle"');
      }, ALWAYS),
    )
    .transform(({ args, flags: f, env: e }, ctx) => {
      const given = f.to ?? f.from;
      const target = parsed(ctx, () => (given !== undefined ? parseTarget(given, env, '--to') : parseEnvTargets(e.PGBACKUP_TARGET!, env)[0]!));
      if (target.kind !== 's3') problem(ctx, '--to: bucket commands need an s3:// target');
      else if (target.prefix.length > MAX_RULE_PREFIX) problem(ctx, `--to: a prefix over ${MAX_RULE_PREFIX} characters leaves no room for lifecycle rule IDs (S3 allows 255)`);
      const { PGBACKUP_TARGET: _t, ...retention } = e;
      return { action: args[0] as 'check' | 'lifecycle', target: target as Target & { kind: 's3' }, apply: f.apply, json: f.json, retention: retention };
    });
}
export type BucketConfig = z.infer<ReturnType<typeof bucketSchema>>;

export function bucketConfig(p: Parsed, env: Env): Readonly<BucketConfig> {
  return parseInput(bucketSchema(env), inputOf(p, env));
}

// ---------------------------------------------------------------------------------------------
// prune

function pruneSchema(env: Env) {
  return z
    .object({
      flags: z.object({ from: fromFields(env).flag, database: str, apply: flag, json: flag }),
      env: z.object({ PGBACKUP_TARGET: fromFields(env).env }).and(retentionSchema),
    })
    .transform(({ flags: f, env: e }, ctx) => {
      const { PGBACKUP_TARGET: envTarget, ...retention } = e;
      const target = f.from ?? envTarget ?? defaultTarget(env);
      if (target.kind === 's3') {
        problem(
          ctx,
          `--from: prune works on folder targets; an S3 bucket expires backups with its lifecycle rules, which apply the same retention: ` +
            `pgbackup bucket lifecycle --to s3://${target.bucket}/${target.prefix} --apply (then pgbackup bucket check)`,
        );
      }
      /** The folder target. */
      const path = target.kind === 'folder' ? target.path : '';
      return { path, database: f.database, apply: f.apply, json: f.json, retention: retention };
    });
}
export type PruneConfig = z.infer<ReturnType<typeof pruneSchema>>;

export function pruneConfig(p: Parsed, env: Env): Readonly<PruneConfig> {
  return parseInput(pruneSchema(env), inputOf(p, env, FROM_BACKING));
}

// ---------------------------------------------------------------------------------------------
// status

function statusSchema(env: Env) {
  return z
    .object({
      flags: z.object({ from: fromFields(env).flag, database: z.array(z.string().min(1, 'empty name')).optional(), 'max-age': durationSchema.optional(), json: flag, prometheus: promFile }),
      env: z.object({ PGBACKUP_TARGET: fromFields(env).env }),
    })
    .transform(({ flags: f, env: e }) => ({
      target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env),
      /** --database, repeatable; empty: every database in the target. */
      databases: [...new Set(f.database ?? [])],
      maxAgeMs: f['max-age'],
      json: f.json,
      prometheus: f.prometheus,
    }));
}
export type StatusConfig = z.infer<ReturnType<typeof statusSchema>>;

export function statusConfig(p: Parsed, env: Env): Readonly<StatusConfig> {
  return parseInput(statusSchema(env), inputOf(p, env, FROM_BACKING));
}

// ---------------------------------------------------------------------------------------------
// rekey

function rekeySchema(env: Env) {
  return z
    .object({
      args: z.array(z.string()),
      flags: z.object({
        all: flag,
        from: fromFields(env).flag,
        database: str,
        ...secretFlags,
        recipient: recipientsSchema((i) => `--recipient #${i + 1}`).optional(),
        'recipients-file': str,
      }),
      env: z.object({
        ...secretEnv,
        PGBACKUP_TARGET: fromFields(env).env,
        PGBACKUP_RECIPIENTS: z
          .string()
          .optional()
          .transform((v) => listVar(v))
          .pipe(recipientsSchema((i) => `PGBACKUP_RECIPIENTS #${i + 1}`)),
        PGBACKUP_RECIPIENTS_FILE: str,
      }),
    })
    .check(
      z.superRefine(({ args, flags: f, env: e }, ctx) => {
        if (args[0] === undefined && !f.all) problem(ctx, 'which backups: give a KEY or --all');
        if (args[0] !== undefined && f.all) problem(ctx, 'which backups: give a KEY or --all, not both');
        if (args[0] !== undefined && f.database !== undefined) problem(ctx, '--database: only with --all');
        const recipients = f.recipient ?? e.PGBACKUP_RECIPIENTS ?? [];
        const file = f['recipients-file'] ?? (f.recipient ? undefined : e.PGBACKUP_RECIPIENTS_FILE || undefined);
        if (recipients.length === 0 && !file) problem(ctx, 'new recipients: give --recipient or --recipients-file (or PGBACKUP_RECIPIENTS): the keys the backups are to be readable by');
      }, ALWAYS),
    )
    .transform(({ args, flags: f, env: e }) => ({
      ...secretsOf(f, e),
      key: args[0],
      all: f.all,
      database: f.database,
      target: f.from ?? e.PGBACKUP_TARGET ?? defaultTarget(env),
      /** The new recipients (besides recipientsFile). */
      recipients: f.recipient ?? e.PGBACKUP_RECIPIENTS ?? [],
      recipientsFile: f['recipients-file'] ?? (f.recipient ? undefined : e.PGBACKUP_RECIPIENTS_FILE || undefined),
    }));
}
export type RekeyConfig = z.infer<ReturnType<typeof rekeySchema>>;

export function rekeyConfig(p: Parsed, env: Env): Readonly<RekeyConfig> {
  return parseInput(rekeySchema(env), inputOf(p, env, { ...SECRET_BACKING, ...FROM_BACKING, PGBACKUP_RECIPIENTS: 'recipient' }));
}
