/** The manifest written beside every dump, once the dump is complete (DESIGN.md). */
import { z } from 'zod';

/** A table's rows, counted from its COPY block in the dump. */
export interface TableCount {
  schema: string;
  name: string;
  rows: number;
}
import type { Tier } from './keys.js';
import { databasePropertiesSchema, type DatabaseProperties } from './dbprops.js';

export const manifestSchema = z.object({
  format: z.literal(1),
  database: z.string(),
  key: z.string(),
  createdAt: z.string(),
  finishedAt: z.string(),
  /** Milliseconds from the start to the stored, checked dump. Absent in old manifests: see durationOf. */
  durationMs: z.number().optional(),
  tool: z.object({ name: z.string(), version: z.string() }),
  server: z.object({ version: z.string() }),
  pgDump: z.object({ version: z.string(), options: z.array(z.string()) }),
  compression: z.object({ algorithm: z.enum(['gzip', 'none']), level: z.number() }),
  encryption: z.object({ type: z.enum(['age', 'none']), recipients: z.array(z.string()), passphrase: z.boolean().optional() }),
  sizes: z.object({ sql: z.number(), stored: z.number() }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tier: z.enum(['daily', 'weekly', 'monthly', 'yearly']),
  tables: z.array(z.object({ schema: z.string(), name: z.string(), rows: z.number() })),
  complete: z.boolean().optional(),
  reason: z.string().optional(),
  /** The database's own properties (encoding, locale, owner, ACL, settings, ...): dbprops.ts. Absent in old manifests and for _globals. */
  databaseProperties: databasePropertiesSchema.optional(),
  /** full | partial (pg_dump filters) | safety (taken before a --clean restore). Absent in old manifests: see manifestKind. */
  kind: z.enum(['full', 'partial', 'safety']).optional(),
  /** For partial backups: the filter options given (--schema=..., --table=..., --exclude-...=...). */
  filters: z.array(z.string()).optional(),
  /** For safety backups: the restore it protects. */
  safetyFor: z.object({ restoring: z.string(), database: z.string(), host: z.string(), port: z.number().optional() }).optional(),
  /**
   * A key rotation under way (`pgbackup rekey`): the object is either still the one `sha256`
   * describes or already the re-keyed one described here (same payload, new age header).
   */
  rekey: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), stored: z.number(), headerSha256: z.string(), recipients: z.array(z.string()) }).optional(),
  /** When the age header was last rewritten for new recipients. */
  rekeyedAt: z.string().optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type BackupKind = 'full' | 'partial' | 'safety';
export type SafetyFor = NonNullable<Manifest['safetyFor']>;

/** pg_dump options that make a dump hold less than the whole database. */
export const FILTER_OPTIONS = ['--schema', '--exclude-schema', '--table', '--exclude-table', '--exclude-table-data', '-n', '-N', '-t', '-T'];

export function filterOptions(options: readonly string[]): string[] {
  return options.filter((o) => FILTER_OPTIONS.some((f) => o === f || o.startsWith(`${f}=`) || (f.length === 2 && o.startsWith(f) && !o.startsWith('--'))));
}

/** A manifest's kind; for manifests written before kinds existed, inferred from the pg_dump options and the reason. */
export function manifestKind(m: Pick<Manifest, 'kind' | 'reason' | 'pgDump'>): BackupKind {
  if (m.kind) return m.kind;
  if (m.reason && /^safety backup/i.test(m.reason)) return 'safety';
  if (filterOptions(m.pgDump.options).length) return 'partial';
  return 'full';
}

export function buildManifest(m: {
  database: string;
  key: string;
  createdAt: string;
  finishedAt: string;
  durationMs?: number | undefined;
  toolVersion: string;
  serverVersion: string;
  pgDumpVersion: string;
  pgDumpOptions: string[];
  level: number;
  recipients: string[];
  passphrase: boolean;
  encrypted: boolean;
  sqlBytes: number;
  storedBytes: number;
  sha256: string;
  tier: Tier;
  tables: TableCount[];
  reason?: string | undefined;
  databaseProperties?: DatabaseProperties | undefined;
  kind?: BackupKind | undefined;
  safetyFor?: SafetyFor | undefined;
}): Manifest {
  const filters = filterOptions(m.pgDumpOptions);
  const kind: BackupKind = m.kind === 'safety' ? 'safety' : filters.length ? 'partial' : 'full';
  return {
    format: 1,
    database: m.database,
    key: m.key,
    createdAt: m.createdAt,
    finishedAt: m.finishedAt,
    ...(m.durationMs !== undefined ? { durationMs: m.durationMs } : {}),
    tool: { name: 'pgbackup', version: m.toolVersion },
    server: { version: m.serverVersion },
    pgDump: { version: m.pgDumpVersion, options: m.pgDumpOptions },
    compression: m.level > 0 ? { algorithm: 'gzip', level: m.level } : { algorithm: 'none', level: 0 },
    encryption: m.encrypted ? { type: 'age', recipients: m.recipients, passphrase: m.passphrase } : { type: 'none', recipients: [] },
    sizes: { sql: m.sqlBytes, stored: m.storedBytes },
    sha256: m.sha256,
    tier: m.tier,
    tables: m.tables.map((t) => ({ schema: t.schema, name: t.name, rows: t.rows })),
    complete: true,
    ...(m.reason ? { reason: m.reason } : {}),
    ...(m.databaseProperties ? { databaseProperties: m.databaseProperties } : {}),
    kind,
    ...(filters.length ? { filters } : {}),
    ...(kind === 'safety' && m.safetyFor ? { safetyFor: m.safetyFor } : {}),
  };
}

/** How long the backup took: recorded, or (old manifests) from its start and end to the second. */
export function durationOf(m: Pick<Manifest, 'durationMs' | 'createdAt' | 'finishedAt'>): number | null {
  if (m.durationMs !== undefined) return m.durationMs;
  const d = Date.parse(m.finishedAt) - Date.parse(m.createdAt);
  return Number.isFinite(d) && d >= 0 ? d : null;
}

/**
 * What `verify` records beside a manifest, as `{dump key}.verified.json` (keys.ts verifiedKey):
 * the outcome of the last verification of that backup. On S3 it carries the backup's tier tag,
 * so lifecycle expires it with its dump; prune deletes it with its dump.
 */
export const verifyRecordSchema = z.object({
  format: z.literal(1),
  key: z.string(),
  database: z.string(),
  kind: z.enum(['full', 'partial', 'safety']),
  tier: z.enum(['daily', 'weekly', 'monthly', 'yearly']),
  verifiedAt: z.string(),
  ok: z.boolean(),
  exitCode: z.number(),
  /** Restored into a scratch database too (--restore-into). */
  restored: z.boolean(),
  durationMs: z.number(),
  checks: z.array(z.object({ check: z.string(), ok: z.boolean(), detail: z.string() })),
  tool: z.object({ name: z.string(), version: z.string() }),
});
export type VerifyRecord = z.infer<typeof verifyRecordSchema>;

export function parseVerifyRecord(bytes: Buffer): VerifyRecord | null {
  try {
    const r = verifyRecordSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Tables whose rows in the dump differ from the manifest's (manifest tables first, then extras). */
export function rowCountDifferences(manifest: Pick<Manifest, 'tables'>, dump: TableCount[]): { differ: string[]; extra: string[] } {
  const differ: string[] = [];
  for (const t of manifest.tables) {
    const seen = dump.find((x) => x.schema === t.schema && x.name === t.name);
    if (!seen) differ.push(`${t.schema}.${t.name}: no COPY block in the dump (manifest: ${t.rows} rows)`);
    else if (seen.rows !== t.rows) differ.push(`${t.schema}.${t.name}: ${seen.rows} rows in the dump, the manifest says ${t.rows}`);
  }
  const extra = dump
    .filter((t) => !manifest.tables.some((x) => x.schema === t.schema && x.name === t.name))
    .map((t) => `${t.schema}.${t.name}: in the dump (${t.rows} rows) but not in the manifest`);
  return { differ, extra };
}

/** Parse a stored manifest; null with a reason when it is not one. */
export function parseManifest(bytes: Buffer): { manifest: Manifest } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { error: 'the manifest is not valid JSON' };
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) return { error: `the manifest is malformed: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { manifest: r.data };
}

/** What a stored object must be for its manifest: its size and sha256, or, while a key rotation is under way, the re-keyed object's. */
export interface StoredExpect {
  size: number;
  sha256: string;
  tables: TableCount[];
  /** The re-keyed object's size and sha256 (manifest.rekey), also accepted. */
  rekeyed?: { size: number; sha256: string } | undefined;
}

export function expectOf(m: Manifest): StoredExpect {
  return { size: m.sizes.stored, sha256: m.sha256, tables: m.tables, rekeyed: m.rekey ? { size: m.rekey.stored, sha256: m.rekey.sha256 } : undefined };
}

/** null when (size, sha256) is what `e` allows, else what differs: SIZE or CHECKSUM, with a message. */
export function storedMismatch(e: Pick<StoredExpect, 'size' | 'sha256' | 'rekeyed'>, size: number, sha256: string): { code: 'SIZE' | 'CHECKSUM'; message: string } | null {
  if (size === e.size && sha256 === e.sha256) return null;
  if (e.rekeyed && size === e.rekeyed.size && sha256 === e.rekeyed.sha256) return null;
  const also = e.rekeyed ? ` (or, for the interrupted key rotation, ${e.rekeyed.size} bytes / ${e.rekeyed.sha256})` : '';
  if (size !== e.size && (!e.rekeyed || size !== e.rekeyed.size)) return { code: 'SIZE', message: `the object has ${size} bytes, its manifest says ${e.size}${also}` };
  return { code: 'CHECKSUM', message: `the object's sha256 ${sha256} differs from its manifest's ${e.sha256}${also}` };
}
