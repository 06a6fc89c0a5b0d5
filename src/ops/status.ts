/**
 * `pgbackup status`: per database, the newest complete full backup, the newest verified one
 * (from the verify records beside the manifests) and the size trend; `--max-age` turns it into a
 * freshness check (exit 8, support/errors.ts StaleError).
 */
import type { StatusConfig } from '../config/config.js';
import type { Context } from '../support/context.js';
import { formatBytes, formatDuration } from '../support/units.js';
import { StaleError } from '../support/errors.js';
import { dbPrefix, isoSeconds, verifiedKey, type Tier } from '../model/keys.js';
import { durationOf, manifestKind, parseVerifyRecord, type VerifyRecord } from '../model/manifest.js';
import { shortAge } from '../model/retention.js';
import { openStorage, type Storage } from '../storage/index.js';
import { MetricsRun, targetLabel } from './metrics.js';
import { FUTURE_SKEW_MS, entryManifest, listBackups, type BackupEntry } from './catalog.js';

/** Full backups the size trend looks back over. */
export const TREND_BACKUPS = 8;

export interface DatabaseStatus {
  database: string;
  newestFull: { key: string; time: string; ageSeconds: number; sizeBytes: number; sqlBytes: number; tier: Tier; durationMs: number | null; finishedAt: string } | null;
  newestVerified: { key: string; time: string; verifiedAt: string; restored: boolean } | null;
  /** The latest successful verification of any full backup of the database. */
  lastVerifiedAt: string | null;
  trend: {
    /** Oldest first. */
    backups: { key: string; time: string; sizeBytes: number }[];
    /** Newest against the one before, as a fraction (0.05 = 5% larger); null with fewer than two. */
    changeFromPrevious: number | null;
    /** Newest against the oldest in `backups`. */
    changeOverWindow: number | null;
  };
  counts: { complete: number; incomplete: number };
  /** Backups skipped because their manifest could not be read. */
  skipped: string[];
  /** --max-age: why this database fails the freshness check. */
  stale?: string;
}

export interface TargetStatus {
  target: string;
  now: string;
  maxAgeSeconds?: number;
  ok: boolean;
  databases: DatabaseStatus[];
}

async function verifyRecords(storage: Storage, entries: BackupEntry[], signal: AbortSignal): Promise<VerifyRecord[]> {
  const todo = entries.filter((e) => e.complete && e.verified);
  const out: VerifyRecord[] = [];
  let i = 0;
  const worker = async () => {
    while (i < todo.length) {
      const e = todo[i++]!;
      const bytes = await storage.getBytes(verifiedKey(e.key), signal).catch(() => null);
      const r = bytes ? parseVerifyRecord(bytes) : null;
      if (r) out.push({ ...r, key: e.key });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return out;
}

async function databaseStatus(storage: Storage, database: string, entries: BackupEntry[], now: number, signal: AbortSignal): Promise<DatabaseStatus> {
  const full: { e: BackupEntry; sql: number; tier: Tier; durationMs: number | null; finishedAt: string }[] = [];
  const skipped: string[] = [];
  for (const e of entries) {
    if (full.length >= TREND_BACKUPS) break;
    if (!e.complete || e.time.getTime() > now + FUTURE_SKEW_MS) continue;
    const r = await entryManifest(storage, e, signal);
    if ('error' in r) {
      skipped.push(`${e.key} (${r.error})`);
      continue;
    }
    if (manifestKind(r.manifest) !== 'full') continue;
    full.push({ e, sql: r.manifest.sizes.sql, tier: r.manifest.tier, durationMs: durationOf(r.manifest), finishedAt: r.manifest.finishedAt });
  }
  const newest = full[0];
  const records = (await verifyRecords(storage, entries, signal)).filter((r) => r.ok && r.kind === 'full');
  const byTime = new Map(entries.map((e) => [e.key, e.time.getTime()]));
  records.sort((a, b) => (byTime.get(b.key) ?? 0) - (byTime.get(a.key) ?? 0));
  const nv = records[0];
  const lastVerifiedAt = records.reduce<string | null>((m, r) => (m === null || Date.parse(r.verifiedAt) > Date.parse(m) ? r.verifiedAt : m), null);
  const window = [...full].reverse();
  const change = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && a > 0 ? (b - a) / a : null);
  return {
    database,
    newestFull: newest
      ? {
          key: newest.e.key,
          time: isoSeconds(newest.e.time),
          ageSeconds: Math.floor((now - newest.e.time.getTime()) / 1000),
          sizeBytes: newest.e.size,
          sqlBytes: newest.sql,
          tier: newest.tier,
          durationMs: newest.durationMs,
          finishedAt: newest.finishedAt,
        }
      : null,
    newestVerified: nv ? { key: nv.key, time: isoSeconds(new Date(byTime.get(nv.key)!)), verifiedAt: nv.verifiedAt, restored: nv.restored } : null,
    lastVerifiedAt,
    trend: {
      backups: window.map((f) => ({ key: f.e.key, time: isoSeconds(f.e.time), sizeBytes: f.e.size })),
      changeFromPrevious: change(full[1]?.e.size, full[0]?.e.size),
      changeOverWindow: full.length > 1 ? change(window[0]?.e.size, newest?.e.size) : null,
    },
    counts: { complete: entries.filter((e) => e.complete).length, incomplete: entries.filter((e) => !e.complete).length },
    skipped,
  };
}

/** The status of every database in the target (or those named), without printing. */
export async function targetStatus(ctx: Context, cfg: Pick<StatusConfig, 'target' | 'databases' | 'maxAgeMs'>, now = Date.now()): Promise<TargetStatus> {
  const storage = openStorage(cfg.target);
  const byDb = new Map<string, BackupEntry[]>();
  for (const d of cfg.databases) byDb.set(d, []);
  const prefixes = cfg.databases.length ? cfg.databases.map((d) => dbPrefix('', d)) : [''];
  for (const p of prefixes) {
    for (const e of await listBackups(storage, p, ctx.signal)) {
      if (cfg.databases.length && !cfg.databases.includes(e.database)) continue;
      const l = byDb.get(e.database) ?? [];
      l.push(e);
      byDb.set(e.database, l);
    }
  }
  const databases: DatabaseStatus[] = [];
  for (const [db, entries] of [...byDb].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    entries.sort((a, b) => b.time.getTime() - a.time.getTime() || b.seq - a.seq);
    const s = await databaseStatus(storage, db, entries, now, ctx.signal);
    if (cfg.maxAgeMs !== undefined) {
      if (!s.newestFull) s.stale = `no complete full backup`;
      else if (s.newestFull.ageSeconds * 1000 > cfg.maxAgeMs) s.stale = `newest complete full backup is ${shortAge(s.newestFull.ageSeconds * 1000)} old (${s.newestFull.time}), over --max-age ${formatDuration(cfg.maxAgeMs)}`;
    }
    databases.push(s);
  }
  const ok = cfg.maxAgeMs === undefined || (databases.length > 0 && databases.every((d) => !d.stale));
  return {
    target: storage.description,
    now: isoSeconds(new Date(now)),
    ...(cfg.maxAgeMs !== undefined ? { maxAgeSeconds: Math.round(cfg.maxAgeMs / 1000) } : {}),
    ok,
    databases,
  };
}

const pct = (f: number | null) => (f === null ? 'n/a' : `${f >= 0 ? '+' : ''}${(f * 100).toFixed(1)}%`);

function printText(ctx: Context, st: TargetStatus): void {
  if (st.databases.length === 0) ctx.out(`no backups in ${st.target}\n`);
  const now = Date.parse(st.now);
  for (const d of st.databases) {
    ctx.out(`${d.database}${d.stale ? `   STALE: ${d.stale}` : ''}\n`);
    const n = d.newestFull;
    ctx.out(
      n
        ? `  newest full backup  ${n.key}\n                      ${n.time} (${shortAge(n.ageSeconds * 1000)} ago), ${formatBytes(n.sizeBytes)}, ${n.tier}${n.durationMs !== null ? `, took ${formatDuration(n.durationMs)}` : ''}\n`
        : `  newest full backup  none\n`,
    );
    const v = d.newestVerified;
    ctx.out(
      v
        ? `  newest verified     ${v.key}\n                      backup of ${v.time}, verified ${v.verifiedAt.replace(/\.\d{3}Z$/, 'Z')} (${shortAge(now - Date.parse(v.verifiedAt))} ago)${v.restored ? ', restored into a scratch database' : ''}\n`
        : `  newest verified     none (run pgbackup verify --latest --database ${d.database})\n`,
    );
    const t = d.trend;
    if (t.backups.length > 1) {
      ctx.out(
        `  size trend          ${t.backups.map((b) => formatBytes(b.sizeBytes)).join(' -> ')}\n` +
          `                      ${pct(t.changeFromPrevious)} on the previous, ${pct(t.changeOverWindow)} over the last ${t.backups.length} full backups\n`,
      );
    } else ctx.out(`  size trend          n/a (fewer than two full backups)\n`);
    ctx.out(`  backups             ${d.counts.complete} complete${d.counts.incomplete ? `, ${d.counts.incomplete} incomplete (no manifest)` : ''}\n`);
    for (const s of d.skipped) ctx.out(`  skipped             ${s}\n`);
  }
}

/** Print the status; with --max-age, fail (exit 8) when a database is stale or has no full backup. */
export async function status(ctx: Context, cfg: Readonly<StatusConfig>): Promise<void> {
  const st = await targetStatus(ctx, cfg);
  if (cfg.json) ctx.out(JSON.stringify(st, null, 2) + '\n');
  else printText(ctx, st);
  if (cfg.prometheus) {
    // The gauges of the databases reported here are replaced; counters and other series stay.
    const metrics = new MetricsRun(cfg.prometheus, 'status');
    const target = targetLabel(cfg.target);
    for (const d of st.databases) {
      const n = d.newestFull;
      if (n) metrics.backup(d.database, target, { at: new Date(Date.parse(n.finishedAt)), sizeBytes: n.sizeBytes, durationMs: n.durationMs });
      else metrics.noBackup(d.database, target);
      if (d.lastVerifiedAt) metrics.verified(d.database, target, new Date(d.lastVerifiedAt), true);
    }
    await metrics.write(ctx, true);
  }
  if (!st.ok) {
    const stale = st.databases.filter((d) => d.stale);
    throw new StaleError(
      'STALE',
      stale.length
        ? `freshness check failed in ${st.target}: ${stale.map((d) => `${d.database}: ${d.stale}`).join('; ')}`
        : `freshness check failed: no backups at all in ${st.target} (is the target right?)`,
    );
  }
}
